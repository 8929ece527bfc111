import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Mount templates kept across Corral processes (root only): each template's mount namespace
/// bound on a file of ``directory`` (root's, 0700, a private mount of its own; see
/// `template_store.c`), named by the digest of everything its content depends on. A `corral`
/// process that makes one isolated run so enters a copy of a template an earlier process
/// made instead of building its own (the binds, `pivot_root`, and the detach of the old root:
/// an RCU grace period of several milliseconds). `corral cleanup` removes them; a template
/// whose content would differ (a replaced `/etc/ld.so.cache`, another user, another
/// `--bind` target) has another name. The template holds read-only binds and a read-only
/// tmpfs only, and runs enter private copies of it: nothing a run does reaches it.
public enum TemplateStore {
    /// Where the templates are bound.
    public static let directory = "/run/corral-templates"
    /// More than this many persisted templates: they are all removed before the next is
    /// added (runs holding one keep it), so the directory stays small.
    static let limit: Int32 = 16

    /// The file name of a template's key: its SHA-256, in hex.
    static func name(of key: String) -> String {
        var context = corral_sha256()
        corral_sha256_init(&context)
        var bytes = Array(key.utf8)
        corral_sha256_update(&context, &bytes, bytes.count)
        var digest = [UInt8](repeating: 0, count: 32)
        corral_sha256_final(&context, &digest)
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// A descriptor of the persisted template named `name`, or nil (none, or not a mount
    /// namespace, or the directory is not root's own 0700 one).
    static func open(_ name: String) -> Int32? {
        guard geteuid() == 0 else { return nil }
        let fd = corral_template_store_open(directory, name)
        return fd >= 0 ? fd : nil
    }

    /// Persists the template `descriptor` as `name`; false when it could not (another
    /// process was first, no /run): the template still serves this process.
    @discardableResult
    static func save(_ name: String, descriptor: Int32) -> Bool {
        guard geteuid() == 0 else { return false }
        return corral_template_store_save(directory, name, descriptor, limit) == 0
    }

    /// Unmounts and removes every persisted template (`corral cleanup`): how many, and why
    /// the directory could not be read when it could not.
    /// Without root there is nothing of the caller's there (only root persists templates).
    public static func removeAll() -> (removed: Int, failure: String?) {
        guard geteuid() == 0 else { return (0, nil) }
        let removed = corral_template_store_remove_all(directory)
        guard removed >= 0 else { return (0, "\(directory): \(SetupFailure.describe(errno))") }
        return (Int(removed), nil)
    }
}
