@testable import Corral
import Testing

/// ``ReportBudget/trim(comment:)``: the first 256 bytes of a comment are free, the rest is
/// charged, and what a cut leaves unused goes back; a cut never splits a Unicode scalar.
@Suite("A test comment's share of the report budget")
struct ReportBudgetTests {
    /// What is left of a budget (taken whole, then given back).
    func left(_ budget: ReportBudget) -> UInt64 {
        let all = budget.take(.max)
        budget.giveBack(all)
        return all
    }

    @Test("0, 256 and 257 bytes: the free part costs nothing, a byte more costs a byte")
    func boundaries() {
        let budget = ReportBudget(10)
        var empty = ""
        budget.trim(comment: &empty)
        var free = String(repeating: "a", count: 256)
        budget.trim(comment: &free)
        #expect(empty.isEmpty && free.utf8.count == 256 && left(budget) == 10)
        var over = String(repeating: "b", count: 257)
        budget.trim(comment: &over)
        #expect(over.utf8.count == 257 && left(budget) == 9)
    }

    @Test("past the budget: cut to the free part and what was left, all of it charged")
    func cut() {
        let budget = ReportBudget(4)
        var comment = String(repeating: "c", count: 300)
        budget.trim(comment: &comment)
        #expect(comment == String(repeating: "c", count: 260))
        #expect(left(budget) == 0)
        var next = String(repeating: "d", count: 300)
        budget.trim(comment: &next)
        #expect(next == String(repeating: "d", count: 256))
    }

    @Test("a multi-byte scalar across the limit is dropped whole, and its bytes not charged")
    func multiByte() {
        let budget = ReportBudget(2)
        // 255 bytes, then "é" (2 bytes) ends at 257, then "€" (3 bytes) would end at 260.
        var comment = String(repeating: "e", count: 255) + "é" + "€" + String(repeating: "f", count: 10)
        budget.trim(comment: &comment)
        #expect(comment == String(repeating: "e", count: 255) + "é")
        #expect(left(budget) == 1, "257 bytes kept: 1 charged, 1 given back")
    }

    @Test("combining marks: cut between scalars, not emptied as one long character")
    func combiningMarks() {
        let budget = ReportBudget(0)
        var comment = "a" + String(repeating: "\u{0301}", count: 2000) // one character of 4001 bytes
        budget.trim(comment: &comment)
        #expect(comment.utf8.count == 255, "1 + 127 × 2 bytes: \(comment.utf8.count)")
    }
}
