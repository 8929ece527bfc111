import Corral
import Foundation
import Testing

/// Specs are read by Corral's own JSON reader (they come from the network with
/// `corral serve`): strict RFC 8259, bounded nesting, errors with their byte offset.
@Suite("The spec's JSON reader")
struct JSONReaderTests {
    func parse(_ bytes: [UInt8]) throws(SpecError) -> JobSpec {
        try JobSpec.parse(Data(bytes))
    }

    func parse(_ text: String) throws(SpecError) -> JobSpec {
        try parse(Array(text.utf8))
    }

    func syntaxError(_ text: String) -> String? {
        syntaxError(Array(text.utf8))
    }

    func syntaxError(_ bytes: [UInt8]) -> String? {
        do {
            _ = try parse(bytes)
            return nil
        } catch {
            return error.path.isEmpty && error.message.hasPrefix("not valid JSON: ") ? error.message : "not a syntax error: \(error)"
        }
    }

    @Test("strings: every escape, \\u with surrogate pairs, raw UTF-8")
    func strings() throws {
        let spec = try parse(#"{"processes": [{"args": ["a\"b\\c\/d", "\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "é中😀", ""]}]}"#)
        #expect(spec.processes[0].args == ["a\"b\\c/d", "\u{8}\u{c}\n\r\t", "é中", "😀", "é中😀", ""])
    }

    @Test("numbers: integers, fractions, exponents; whitespace anywhere JSON allows it")
    func numbers() throws {
        let spec = try parse(" {\n\t\"processes\" : [ { \"args\" : [ \"x\" ] , \"limits\" : { \"cpuTime\" : 1.5e0 , \"memory\" : 2E6 , \"wallTime\" : 0.25 } } ] } \r\n")
        #expect(spec.processes[0].limits.cpuTime == .milliseconds(1500))
        #expect(spec.processes[0].limits.memory == 2_000_000)
        #expect(spec.processes[0].limits.wallTime == .milliseconds(250))
    }

    @Test("what RFC 8259 refuses is refused, with the byte offset", arguments: [
        (#"{"processes": [],}"#, "expected a member name in quotes at byte 17"),
        (#"{"processes": [1,]}"#, "unexpected character ']' at byte 17"),
        (#"{"processes": 01}"#, "a number with a leading zero at byte 14"),
        (#"{"processes": 1.}"#, "invalid number at byte 16"),
        (#"{"processes": -}"#, "invalid number at byte 15"),
        (#"{"processes": 1e400}"#, "a number out of range at byte 14"),
        (#"{"processes": "\ud83d"}"#, "a lone surrogate in a \\u escape at byte 21"),
        (#"{"processes": "\x"}"#, "invalid escape '\\x' at byte 17"),
        ("{\"processes\": \"a\tb\"}", "a control character in a string at byte 16"),
        (#"{"processes": "abc"#, "unterminated string at byte 18"),
        (#"{"processes": []} x"#, "unexpected data after the document at byte 18"),
        (#"{"processes": [], "processes": []}"#, "duplicate member \"processes\" at byte 31"),
        (#"{'processes': []}"#, "expected a member name in quotes at byte 1"),
        (#"{"processes": tru}"#, "invalid literal at byte 14"),
        ("", "unexpected end of the document at byte 0"),
        (#"{"processes": NaN}"#, "unexpected character 'N' at byte 14"),
    ])
    func refused(_ text: String, _ message: String) {
        #expect(syntaxError(text) == "not valid JSON: \(message)")
    }

    @Test("invalid UTF-8 in a string is refused")
    func invalidUTF8() {
        let bytes = Array(#"{"processes": [{"args": [""#.utf8) + [0xC3, 0x28] + Array(#""]}]}"#.utf8)
        #expect(syntaxError(bytes)?.contains("not valid UTF-8") == true)
    }

    @Test("deep nesting is refused without exhausting the stack")
    func depth() {
        let deep = #"{"processes": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(syntaxError(deep)?.contains("nested deeper than 256 levels") == true)
        let fine = #"{"processes": [{"args": ["x"]}], "x": "# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}"
        #expect(syntaxError(fine) == "not a syntax error: x: unknown field")
    }

    @Test("documents JSONSerialization accepts are read alike")
    func agreesWithFoundation() throws {
        let documents = [
            #"{"processes": [{"args": ["/bin/echo", "hi"], "env": {"A": "1", "B": ""}, "stdin": {"content": "x\ny"}}]}"#,
            #"{"processes":[{"args":["a"],"limits":{"cpuTime":"2s","memory":"64M","processes":8}}],"workdir":{"keep":false}}"#,
            #"{"processes": [{"args": ["a"], "stdout": null, "stderr": {"capture": true}}], "pipes": [], "files": [], "collect": []}"#,
        ]
        for document in documents {
            _ = try JSONSerialization.jsonObject(with: Data(document.utf8))
            _ = try parse(document)
        }
    }
}
