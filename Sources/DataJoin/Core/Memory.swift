#if canImport(Glibc)
    import CMalloc
#endif

/// Process-wide allocator settings that keep peak memory near what is in use.
public enum Memory {
    /// glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), so
    /// after one 16 MiB value is freed the next ones come from the heap and stay resident when
    /// freed. A fixed threshold keeps every block of 1 MiB or more in its own mapping, returned
    /// to the system the moment it is freed: a run that handles several large values in turn
    /// peaks at what it holds at once, not at the sum.
    public static func returnLargeBlocksPromptly() {
        #if canImport(Glibc)
            _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
            _ = mallopt(M_TRIM_THRESHOLD, 4 << 20)
        #endif
    }

    /// Gives the system back the free memory inside the heap, not only at its top: called
    /// between the large steps of one run (ingest, then import), so the second starts where
    /// the first began.
    public static func trim() {
        #if canImport(Glibc)
            _ = malloc_trim(0)
        #endif
    }
}
