import CorralTestSupport
import Testing

/// Queues `count` jobs through `server` that read the command line and environment of each
/// of `pids` and their own environment, and expects every job done, its reading finished
/// ("looked"), and `secret` in none of their answers: what a job of a worker without
/// isolation can read must not hold the queue's password.
func expectJobsCannotRead(_ secret: String, of pids: [Int32], through server: ServeProcess, jobs count: Int,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
    let look = pids.map { "cat /proc/\($0)/cmdline /proc/\($0)/environ" }.joined(separator: "; ") + "; env; echo looked"
    var ids: [String] = []
    for _ in 0..<count {
        let answer = try JobsRouteTests.call(server, "POST", "/v1/jobs", JobsRouteTests.job(look))
        ids.append(try #require(answer.json["id"] as? String, "\(answer.text)", sourceLocation: sourceLocation))
    }
    for id in ids {
        let done = try JobsRouteTests.wait(server, id)
        #expect(done.json["state"] as? String == "done", "\(done.text)", sourceLocation: sourceLocation)
        #expect(JobsRouteTests.stdout(done)?.hasSuffix("looked\n") == true, "\(done.text)", sourceLocation: sourceLocation)
        #expect(!done.text.contains(secret), "a job saw the queue's password", sourceLocation: sourceLocation)
    }
}
