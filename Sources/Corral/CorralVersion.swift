/// Corral's version, as `corral --version`, `GET /v1/version` and the reports say it.
public enum CorralVersion {
    public static let string = "0.2.0"
}
