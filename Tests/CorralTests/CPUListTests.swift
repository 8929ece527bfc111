import Corral
import Foundation
import Testing

@Suite("CPU lists")
struct CPUListTests {
    @Test("lists and ranges, folded back the kernel's way")
    func parses() throws {
        #expect(try CPUList("1").cpus == [1])
        #expect(try CPUList("0-1,3").cpus == [0, 1, 3])
        #expect(try CPUList("3,0-1,1").cpus == [0, 1, 3])
        #expect(try CPUList("5,0-2,4").description == "0-2,4-5")
        #expect(try CPUList(cpus: [2, 0, 1]).description == "0-2")
        #expect(try CPUList("0-1").isSubset(of: CPUList("0-3")))
        #expect(try !CPUList("0,4").isSubset(of: CPUList("0-3")))
    }

    @Test("anything else is refused with what is wrong", arguments: ["", ",", "1,", ",1", "a", "1-", "-1", "2-1", " 1", "1 ", "0x1", "+1", "1.0", "8192", "1-99999"])
    func refuses(_ text: String) {
        #expect(throws: CorralError.self, "\"\(text)\"") { try CPUList(text) }
    }

    @Test("an empty or negative set of CPUs is refused")
    func refusesSets() {
        #expect(throws: CorralError.self) { try CPUList(cpus: []) }
        #expect(throws: CorralError.self) { try CPUList(cpus: [-1]) }
    }

    @Test("a CPU that is not online is refused, naming it; Corral's own CPUs are available")
    func availability() throws {
        let allowed = try #require(CPUList.allowed())
        try allowed.checkAvailable()
        do {
            try CPUList("8191").checkAvailable()
            Issue.record("CPU 8191 was taken as online")
        } catch {
            #expect(error.message == "cpus: CPU 8191 is not online (online: \(CPUList.online()!))")
        }
    }

    @Test("JSON: a string both ways")
    func codable() throws {
        let list = try JSONDecoder().decode(CPUList.self, from: Data("\"0-1,3\"".utf8))
        #expect(list.cpus == [0, 1, 3])
        #expect(String(decoding: try JSONEncoder().encode(list), as: UTF8.self) == "\"0-1,3\"")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CPUList.self, from: Data("\"1-0\"".utf8)) }
    }

    @Test("a spec's cpus: on a process, or on the job for every process that names none")
    func spec() throws {
        let spec = try JobSpec.parse(Data("""
        {"cpus": "0", "processes": [{"args": ["a"]}, {"args": ["b"], "cpus": "0"}]}
        """.utf8))
        #expect(spec.processes.map(\.cpus) == [try CPUList("0"), try CPUList("0")])
        let plain = try JobSpec.parse(Data(#"{"processes": [{"args": ["a"]}]}"#.utf8))
        #expect(plain.processes[0].cpus == nil)
        #expect(plain.pinning(try CPUList("0")).processes[0].cpus == (try CPUList("0")))
        #expect(spec.pinning(try CPUList("1")).processes.map(\.cpus) == [try CPUList("0"), try CPUList("0")])
    }

    @Test("a spec's bad cpus are refused with their path", arguments: [
        (#"{"processes": [{"args": ["a"], "cpus": "1-0"}]}"#, "processes[0].cpus"),
        (#"{"processes": [{"args": ["a"], "cpus": 1}]}"#, "processes[0].cpus"),
        (#"{"processes": [{"args": ["a"], "cpus": "8191"}]}"#, "processes[0].cpus"),
        (#"{"cpus": "", "processes": [{"args": ["a"]}]}"#, "cpus"),
    ])
    func specRefused(_ json: String, _ path: String) {
        do {
            _ = try JobSpec.parse(Data(json.utf8))
            Issue.record("accepted: \(json)")
        } catch {
            #expect(error.path == path, "\(error)")
        }
    }

    @Test("CPUs given from outside: a process's own must be within them")
    func within() throws {
        let document = JobDocument.job(try JobSpec.parse(Data(#"{"processes": [{"args": ["a"], "cpus": "0"}]}"#.utf8)))
        try document.checkCPUs(within: CPUList("0-1"))
        let one = try CPUList("1")
        do {
            try document.checkCPUs(within: one)
            Issue.record("CPU 0 was taken as within CPU 1")
        } catch {
            #expect(error.path == "processes[0].cpus")
        }
    }
}
