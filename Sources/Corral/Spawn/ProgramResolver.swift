#if canImport(Glibc)
import Glibc
#endif

/// Finds the file to execute before anything is forked, the way `execvp` would but in
/// the job's own `PATH`, so a missing program is a setup error, never an exit code 127.
enum ProgramResolver {
    static func resolve(_ program: String, environment: [String: String]) -> Result<String, SetupFailure> {
        if program.contains("/") {
            return .success(program)
        }
        let searchPath = environment["PATH"] ?? Job.defaultEnvironment["PATH"]!
        var firstNonExecutable: String?
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let base = directory.isEmpty ? "." : String(directory)
            let candidate = base.hasSuffix("/") ? base + program : base + "/" + program
            var info = stat()
            guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 {
                return .success(candidate)
            }
            if firstNonExecutable == nil { firstNonExecutable = candidate }
        }
        // Like execvp: a match that is not executable is still what exec is tried on, so the
        // report says "permission denied" for it rather than "not found".
        if let candidate = firstNonExecutable {
            return .success(candidate)
        }
        return .failure(SetupFailure(
            stage: "resolve", errno: ENOENT,
            message: "\(program): not found in PATH (\(searchPath))"
        ))
    }
}
