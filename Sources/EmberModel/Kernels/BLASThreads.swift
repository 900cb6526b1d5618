import COpenBLAS

/// OpenBLAS's own thread pool. With 2 cores, BLAS threads times pipeline threads
/// must not exceed the core count, or the two pools oversubscribe and both slow down.
public enum BLASThreads {
    /// Threads OpenBLAS uses for one call.
    public static var count: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// OpenBLAS's build description, for example `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64`.
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel OpenBLAS selected at run time.
    public static var coreName: String { String(cString: openblas_get_corename()) }
}
