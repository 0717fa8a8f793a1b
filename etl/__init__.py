"""The nightly ETL: extract, validate, transform (derive, route, mask) and publish."""

# polars' allocator (jemalloc) gives back to the kernel the pages freed 0.5-1 s before, and
# each stage of a run frees gigabytes the next one takes again: a full build on `large` spent
# ~2 s more of system time refaulting them (7.2-7.7 against 5.4 s). Kept 10 s, the pages
# are reused; the peak is as before (3.6-3.8 GiB). An allocation of 8 MiB or more (a column
# of a partition's rows, a table's concatenated text) came from jemalloc's arena for large
# ones, which ignores that setting and gives its pages back at once: the kernel zeroing
# pages to refault them was 20% of a full build's CPU samples on `large` (`perf`), 3.5%
# without that arena (oversize_threshold:0). Its CPU samples fell by a quarter, its time by
# 1-4% (4 of 4 alternations), a day's run's by 6% (1.42 -> 1.33 s, 5 each), the peak as
# before (3.78-3.89 GiB against 3.81-3.96); the bare copy's time fell by 21%.
# Never giving pages back (decay -1) did not help and raised the peak to 4.01 GiB.
# Read once, as polars loads: the job's entry point (`python -m etl`) sets them before it
# imports polars, and the bench's child runs too.
ALLOCATOR = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:10000,muzzy_decay_ms:10000,oversize_threshold:0"}
