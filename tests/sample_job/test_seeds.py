"""The sample job, seed ranges: parsed lazily (memory O(number of ranges)), sharded by position without being
materialised, 63-bit non-negative bounds, and image names of one width per outdir that sort in seed order."""

import itertools
import tracemalloc

import pytest

from ersde_theory.sample_job import MAX_SEED, parse_seeds, png_name


def test_a_billion_seeds_cost_no_memory():
    tracemalloc.start()
    seeds = parse_seeds("0-999999999")
    first = list(itertools.islice(seeds.shard(1, 3), 1000))
    n_mine = sum(1 for _ in itertools.islice(seeds.shard(2, 3), 200_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(seeds) == 10**9 and seeds[-1] == 999_999_999 and seeds[123_456_789] == 123_456_789
    assert first[:3] == [1, 4, 7] and n_mine == 200_000
    assert peak < 200_000, peak  # bytes; the old list of 10^9 ints needed ~40 GB


@pytest.mark.parametrize("spec", ["0-9,20,30-31,5-22", "7", "1,3,5,7,9,11", "0-3,10-12,100"])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shards_partition_the_seeds_in_position_order(spec, world):
    seeds = parse_seeds(spec)
    full = list(seeds)
    assert full == sorted(set(full)) and len(seeds) == len(full)
    for rank in range(world):
        assert list(seeds.shard(rank, world)) == full[rank::world]


def test_seed_bounds():
    assert parse_seeds(f"{MAX_SEED}") == [2**63 - 1]
    with pytest.raises(ValueError, match="exceeds the largest seed 2\\^63 - 1"):
        parse_seeds("18446744073709551616")  # 2^64
    with pytest.raises(ValueError, match="seed range"):
        parse_seeds("-1")


def test_names_have_one_width_and_sort_by_seed():
    assert png_name(7) == "000007.png"
    seeds = [3, 999_999, 1_000_000, 12_345_678]
    names = [png_name(s, 8) for s in seeds]  # an outdir whose first run reached 8 digits
    assert sorted(names) == names and names[0] == "00000003.png"
