import CBLAS

public enum BLAS {
    /// OpenBLAS's thread pool size for this process.
    public static func setThreads(_ count: Int) { openblas_set_num_threads(Int32(max(count, 1))) }
}
