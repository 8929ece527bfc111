/// The JSON of a report written directly, for the server's hot path: the same document as
/// `JSONEncoder` with `.sortedKeys` and `.withoutEscapingSlashes` gives from the reports'
/// `Codable` conformance (keys sorted, absent optionals as `null` where `encode(to:)` writes
/// them, omitted where it omits them), several times faster. A test holds the two equal.
public enum ReportJSON {
    public static func encode(_ report: JobReport) -> [UInt8] {
        var writer = Writer()
        writer.job(report)
        return writer.bytes
    }

    public static func encode(_ report: RunReport) -> [UInt8] {
        var writer = Writer()
        writer.run(report, name: nil)
        return writer.bytes
    }

    struct Writer {
        var bytes: [UInt8] = []

        init() { bytes.reserveCapacity(2048) }

        mutating func raw(_ text: StaticString) {
            bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }

        mutating func key(_ name: StaticString, first: Bool = false) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            bytes.append(UInt8(ascii: "\""))
            raw(name)
            raw("\":")
        }

        mutating func string(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                case 0..<0x20:
                    raw("\\u00")
                    let digits: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(digits[Int(byte >> 4)])
                    bytes.append(digits[Int(byte & 0xF)])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }

        mutating func number(_ value: Double) {
            if value == value.rounded(), abs(value) < 1e15 {
                bytes.append(contentsOf: String(Int64(value)).utf8)
            } else {
                bytes.append(contentsOf: "\(value)".utf8)
            }
        }

        mutating func integer<I: BinaryInteger>(_ value: I) {
            bytes.append(contentsOf: String(value).utf8)
        }

        mutating func bool(_ value: Bool) {
            if value { raw("true") } else { raw("false") }
        }

        mutating func optional<T>(_ value: T?, _ write: (inout Writer, T) -> Void) {
            if let value { write(&self, value) } else { raw("null") }
        }

        mutating func job(_ report: JobReport) {
            bytes.append(UInt8(ascii: "{"))
            key("files", first: true)
            bytes.append(UInt8(ascii: "["))
            for (index, file) in report.files.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes.append(UInt8(ascii: "{"))
                var first = true
                if let content = file.content { key("content", first: first); captured(content); first = false }
                if let error = file.error { key("error", first: first); string(error); first = false }
                if let executable = file.executable { key("executable", first: first); bool(executable); first = false }
                if let fileId = file.fileId { key("fileId", first: first); string(fileId.hex); first = false }
                key("path", first: first)
                string(file.path)
                if let process = file.process { key("process"); string(process) }
                if let size = file.size { key("size"); integer(size) }
                bytes.append(UInt8(ascii: "}"))
            }
            raw("],\"processes\":[")
            for (index, process) in report.processes.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                run(process.report, name: process.name, startedAt: process.startedAt, endedAt: process.endedAt)
            }
            raw("]")
            key("status"); string(report.status.rawValue)
            key("wallTime"); number(report.wallTime)
            key("workdir"); optional(report.workdir) { $0.string($1) }
            bytes.append(UInt8(ascii: "}"))
        }

        /// `name` given: a process of a job, with its times on the job's clock.
        mutating func run(_ report: RunReport, name: String?, startedAt: Double? = nil, endedAt: Double? = nil) {
            bytes.append(UInt8(ascii: "{"))
            key("containment", first: true); string(report.containment.rawValue)
            key("cpuTime"); number(report.cpuTime)
            if name != nil { key("endedAt"); optional(endedAt) { $0.number($1) } }
            key("error"); optional(report.error) { $0.failure($1) }
            key("events")
            bytes.append(UInt8(ascii: "["))
            for (index, event) in report.events.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                bytes.append(UInt8(ascii: "{"))
                key("event", first: true); string(event.event.rawValue)
                if let exitCode = event.exitCode { key("exitCode"); integer(exitCode) }
                key("pid"); integer(event.pid)
                if let signal = event.signal { key("signal"); integer(signal) }
                key("time"); number(event.time)
                bytes.append(UInt8(ascii: "}"))
            }
            bytes.append(UInt8(ascii: "]"))
            key("exitCode"); optional(report.exitCode) { $0.integer($1) }
            key("isolated"); bool(report.isolated)
            key("leftovers"); integer(report.leftovers)
            key("limits"); limits(report.limits)
            key("memoryPeak"); integer(report.memoryPeak)
            key("message"); string(report.message)
            if let name { key("name"); string(name) }
            key("pid"); optional(report.pid) { $0.integer($1) }
            key("processLimitHit"); bool(report.processLimitHit)
            key("processes"); integer(report.processes)
            key("signal"); optional(report.signal) { $0.integer($1) }
            key("signalName"); optional(report.signalName) { $0.string($1) }
            if name != nil { key("startedAt"); optional(startedAt) { $0.number($1) } }
            key("status"); string(report.status.rawValue)
            key("stderr"); optional(report.stderr) { $0.captured($1) }
            key("stdout"); optional(report.stdout) { $0.captured($1) }
            key("systemTime"); number(report.systemTime)
            key("userTime"); number(report.userTime)
            key("wallTime"); number(report.wallTime)
            key("warnings")
            bytes.append(UInt8(ascii: "["))
            for (index, warning) in report.warnings.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                string(warning)
            }
            bytes.append(UInt8(ascii: "]"))
            bytes.append(UInt8(ascii: "}"))
        }

        mutating func limits(_ limits: Limits) {
            bytes.append(UInt8(ascii: "{"))
            key("addressSpace", first: true); optional(limits.addressSpace) { $0.integer($1) }
            key("cpuTime"); optional(limits.cpuTime) { $0.number($1.seconds) }
            key("memory"); optional(limits.memory) { $0.integer($1) }
            key("openFiles"); optional(limits.openFiles) { $0.integer($1) }
            key("output"); optional(limits.output) { $0.integer($1) }
            key("processes"); optional(limits.processes) { $0.integer($1) }
            key("stack"); optional(limits.stack) { $1 == Limits.unlimitedStack ? $0.string("unlimited") : $0.integer($1) }
            key("wallTime"); optional(limits.wallTime) { $0.number($1.seconds) }
            bytes.append(UInt8(ascii: "}"))
        }

        mutating func failure(_ failure: SetupFailure) {
            bytes.append(UInt8(ascii: "{"))
            key("errno", first: true); integer(failure.errno)
            key("errnoName"); string(failure.errnoName)
            key("message"); string(failure.message)
            key("stage"); string(failure.stage)
            bytes.append(UInt8(ascii: "}"))
        }

        mutating func captured(_ output: CapturedOutput) {
            bytes.append(UInt8(ascii: "{"))
            var first = true
            if let base64 = output.base64 { key("base64", first: true); string(base64); first = false }
            key("bytes", first: first); integer(output.bytes)
            if let text = output.text { key("text"); string(text) }
            key("truncated"); bool(output.truncated)
            bytes.append(UInt8(ascii: "}"))
        }
    }
}
