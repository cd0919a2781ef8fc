# tuned_malloc.sh — sourced by compare_torch.sh and compare_sampling.sh before they start either
# program: both run with glibc's malloc tuned (GLIBC_TUNABLES, unless the caller sets it).
#
# By default malloc maps large blocks afresh from the system and returns them when freed, so a
# program that allocates every op's output, as PyTorch does, takes a page fault for every 4 KB
# it writes; PyTorch's ch-16 sampling step ran about twice and its training step 1.3 times as
# long that way. With the mmap threshold fixed at its maximum (32 MB) and trimming off, freed
# blocks are reused (ddpmkit recycles its own buffers and does not change).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296}"
