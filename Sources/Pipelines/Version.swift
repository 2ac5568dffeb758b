/// The nimetrics version, written into every sidecar, visit record and database.
public enum NimetricsVersion {
    public static let string = "0.1.0"
}
