import Dispatch

/// The one clock every duration in a run is measured with: monotonic, so a wall-clock
/// adjustment mid-run cannot make a step take negative time.
public enum MonotonicClock {
    public static var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
