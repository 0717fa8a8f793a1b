"""The nightly ETL: extract, validate, transform (derive, route, mask) and publish."""

# polars' allocator (jemalloc) gives back to the kernel the pages freed 0.5-1 s before, and
# each stage of a run frees gigabytes the next one takes again: a full build on `large` spent
# ~2 s more of system time refaulting them (7.2-7.7 against 5.4 s). Kept 10 s, the pages
# are reused; the peak is as before (3.6-3.8 GiB). Read once, as polars loads: the job's entry
# point (`python -m etl`) sets them before it imports polars, and the bench's child runs too.
ALLOCATOR = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:10000,muzzy_decay_ms:10000"}
