import Corral
import Foundation
import Testing

/// The spec's side of issue 15: `capture.onLimit` and `ignoreSignals`, parsed and refused.
@Suite("Run options in specs")
struct RunOptionsSpecTests {
    func parse(_ json: String) throws(SpecError) -> JobSpec {
        try JobSpec.parse(Data(json.utf8))
    }

    @Test("capture.onLimit: kill by default, or truncate")
    func onLimit() throws {
        let spec = try parse("""
        {"processes": [{"args": ["a"], "stdout": {"capture": {"max": 1000, "onLimit": "truncate"}},
                        "stderr": {"capture": {"onLimit": "kill"}}},
                       {"args": ["b"], "stdout": {"capture": {"max": "1K"}}, "stderr": {"capture": true}}]}
        """)
        #expect(spec.processes[0].stdout == .capture(max: 1000, onLimit: .truncate))
        #expect(spec.processes[0].stderr == .capture(max: StreamSpec.defaultCaptureMax, onLimit: .kill))
        #expect(spec.processes[1].stdout == .capture(max: 1024, onLimit: .kill))
        #expect(spec.processes[1].stderr == .capture(max: StreamSpec.defaultCaptureMax, onLimit: .kill))
    }

    @Test("ignoreSignals: names become a mask (bit N-1 for signal N); a repeated name counts once")
    func ignoreSignals() throws {
        let spec = try parse(#"{"processes": [{"args": ["a"], "ignoreSignals": ["SIGPIPE", "SIGUSR1", "SIGPIPE"]}, {"args": ["b"]}]}"#)
        #expect(spec.processes[0].ignoreSignals.mask == (1 << 12) | (1 << 9))
        #expect(spec.processes[0].ignoreSignals.names == ["SIGUSR1", "SIGPIPE"])
        #expect(spec.processes[1].ignoreSignals.isEmpty)
    }

    static let refused: [(String, String)] = [
        (#"{"processes": [{"args": ["a"], "stdout": {"capture": {"onLimit": "truncat"}}}]}"#,
         #"processes[0].stdout.capture.onLimit: must be "kill" (the default: past the cap the process is killed, output-limit) or "truncate" (the capture is cut and the process goes on), not "truncat""#),
        (#"{"processes": [{"args": ["a"], "stderr": {"capture": {"onLimit": true}}}]}"#,
         "processes[0].stderr.capture.onLimit: must be a string, not a boolean"),
        (#"{"processes": [{"args": ["a"], "stdout": {"capture": {"max": 10, "onlimit": "kill"}}}]}"#,
         "processes[0].stdout.capture.onlimit: unknown field"),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": ["SIGKILL"]}]}"#,
         "processes[0].ignoreSignals[0]: SIGKILL cannot be ignored (the kernel does not allow it)"),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": ["SIGPIPE", "SIGSTOP"]}]}"#,
         "processes[0].ignoreSignals[1]: SIGSTOP cannot be ignored (the kernel does not allow it)"),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": ["PIPE"]}]}"#,
         #"processes[0].ignoreSignals[0]: unknown signal "PIPE" (give a name such as "SIGPIPE": SIGHUP, "#),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": ["SIGFOO"]}]}"#, #"processes[0].ignoreSignals[0]: unknown signal "SIGFOO""#),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": [13]}]}"#, "processes[0].ignoreSignals[0]: must be a string, not a number"),
        (#"{"processes": [{"args": ["a"], "ignoreSignals": "SIGPIPE"}]}"#, "processes[0].ignoreSignals: must be an array, not a string"),
    ]

    @Test("a bad onLimit or signal name is refused with a message naming the field", arguments: refused)
    func refusedSpecs(json: String, expected: String) {
        let error = #expect(throws: SpecError.self) { try parse(json) }
        #expect(error?.description.hasPrefix(expected) == true, "\(String(describing: error))")
    }

    @Test("SignalSet round-trips through JSON as its names")
    func signalSetCodable() throws {
        let set = try SignalSet(names: ["SIGTERM", "SIGHUP"])
        let data = try JSONEncoder().encode(set)
        #expect(String(decoding: data, as: UTF8.self) == #"["SIGHUP","SIGTERM"]"#)
        #expect(try JSONDecoder().decode(SignalSet.self, from: data) == set)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(SignalSet.self, from: Data(#"["SIGKILL"]"#.utf8)) }
    }
}
