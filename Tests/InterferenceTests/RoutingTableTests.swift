import Foundation
import Storage
import Testing

@testable import Interference

/// `/routing` of the probe and interference files: written and read back whole, pooled across
/// shards by tokens, and refused when a value could not have been written by a probe.
struct RoutingTableTests {
    static let tasks = ["image-classification", "mlm"]

    static func row(
        _ layer: Int, _ task: String, tokens: Int, share: [Double], entropy: Double, decision: String = "ffn",
        side: String = "input", segment: Int = 0
    ) -> RoutingTable.Row {
        RoutingTable.Row(
            layer: layer, decision: decision, task: task, side: side, segment: segment, tokens: tokens,
            weightShare: share, meanEntropy: entropy)
    }

    static let table = RoutingTable(
        routing: "attribute", experts: 2,
        rows: [
            row(0, "image-classification", tokens: 80, share: [0.25, 0.75], entropy: 0.5, decision: "attention"),
            row(0, "mlm", tokens: 40, share: [1, 0], entropy: 0.1, side: "target"),
            row(1, "mlm", tokens: 0, share: [0, 0], entropy: 0, segment: 1),
        ])

    /// Writes `table` into a fresh file and reads it back.
    func roundTrip(_ table: RoutingTable) throws -> RoutingTable? {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("routing.h5")
        try HDF5File.write(to: url) { (file: HDF5File) throws(StorageError) in try table.write(to: file) }
        let file = try HDF5File.open(url)
        defer { file.discard() }
        return try RoutingTable.read(from: file, tasks: Self.tasks)
    }

    @Test("written and read back equal; a file without /routing has none")
    func roundTripsWhole() throws {
        #expect(try roundTrip(Self.table) == Self.table)
        #expect(try roundTrip(RoutingTable(routing: "token", experts: 2, rows: [])) == nil)
    }

    @Test("pooled shards: tokens add, shares and entropy are token-weighted means, rows in the probe's order")
    func poolsByTokens() throws {
        let a = RoutingTable(
            routing: "attribute", experts: 2,
            rows: [Self.row(1, "mlm", tokens: 1, share: [1, 0], entropy: 0.2)])
        let b = RoutingTable(
            routing: "attribute", experts: 2,
            rows: [
                Self.row(1, "mlm", tokens: 3, share: [0, 1], entropy: 0.6),
                Self.row(1, "image-classification", tokens: 2, share: [0.5, 0.5], entropy: 0.4),
                Self.row(0, "mlm", tokens: 5, share: [0.2, 0.8], entropy: 0.3),
            ])
        let pooled = try #require(RoutingTable.pooled([a, b], tasks: Self.tasks))
        #expect(pooled.rows.map(\.layer) == [0, 1, 1])
        #expect(pooled.rows.map(\.task) == ["mlm", "image-classification", "mlm"])
        let mlm = pooled.rows[2]
        #expect(mlm.tokens == 4 && mlm.weightShare == [0.25, 0.75])
        #expect(abs(mlm.meanEntropy - (0.2 + 3 * 0.6) / 4) < 1e-15)
        #expect(RoutingTable.pooled([], tasks: Self.tasks) == nil)
    }

    /// Damage case `k` applied to `t`; returns the dataset it damages.
    static func damage(_ k: Int, _ t: inout RoutingTable) -> String {
        switch k {
        case 0: t.rows[0].weightShare = [.nan, 1]; return "weight_share"
        case 1: t.rows[0].weightShare = [0.5, 0.4]; return "weight_share"
        case 2: t.rows[2].weightShare = [0.5, 0.5]; return "weight_share"  // shares without tokens
        case 3: t.rows[0].meanEntropy = 0.8; return "mean_entropy"  // above ln 2
        case 4: t.rows[1].meanEntropy = -0.1; return "mean_entropy"
        case 5: t.rows[1].task = "ocr"; return "task"
        case 6: t.rows[1].decision = "mlp"; return "decision"
        case 7: t.rows[1].side = "output"; return "side"
        case 8: t.rows[1].tokens = -1; return "tokens"
        case 9: t.rows[1].segment = -1; return "segment"
        default: t.rows[1].layer = -2; return "layer"
        }
    }

    @Test("a value no probe writes is refused, naming the dataset", arguments: 0..<11)
    func refusesDamage(case k: Int) throws {
        var table = Self.table
        let dataset = Self.damage(k, &table)
        do {
            _ = try roundTrip(table)
            Issue.record("a table with a bad '\(dataset)' was read")
        } catch let error as InterferenceError {
            guard case .badFile(_, let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.hasPrefix("'/routing/\(dataset)': "), "\(reason)")
        }
    }

    @Test("a weight_share whose width is not the experts attribute is refused")
    func refusesWrongWidth() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("routing.h5")
        try HDF5File.write(to: url) { (file: HDF5File) throws(StorageError) in
            try Self.table.write(to: file)
            try file.setAttribute("experts", .int(3), at: RoutingTable.path)
        }
        let file = try HDF5File.open(url)
        defer { file.discard() }
        #expect(throws: InterferenceError.badFile(file: url.path, reason: "'/routing/weight_share': shape [3, 2], expected [3, 3]")) {
            _ = try RoutingTable.read(from: file, tasks: Self.tasks)
        }
    }

    /// Writes `Self.table`, then lets `edit` change the file as damage or another writer could.
    func readEdited(_ edit: (HDF5File) throws(StorageError) -> Void) throws -> RoutingTable? {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("routing.h5")
        try HDF5File.write(to: url) { (file: HDF5File) throws(StorageError) in
            try Self.table.write(to: file)
            try edit(file)
        }
        let file = try HDF5File.open(url)
        defer { file.discard() }
        return try RoutingTable.read(from: file, tasks: Self.tasks)
    }

    /// The reason `body`'s refusal gives ("" when it is not `.badFile`, nil when nothing was refused).
    func reason(_ body: () throws -> RoutingTable?) -> String? {
        do {
            _ = try body()
            return nil
        } catch let InterferenceError.badFile(_, reason) {
            return reason
        } catch {
            return ""
        }
    }

    @Test("refused: no experts, a routing name that is not one, a repeated row, no rows")
    func refusesBadTables() throws {
        let p = RoutingTable.path
        #expect(
            reason { try readEdited { (f: HDF5File) throws(StorageError) in try f.setAttribute("experts", .int(0), at: p) } }
                == "'/routing': experts = 0, expected at least 1")
        #expect(
            reason { try readEdited { (f: HDF5File) throws(StorageError) in try f.setAttribute("routing", .string("a|b"), at: p) } }
                == "'/routing': routing 'a|b' is not a routing level's name")
        var repeated = Self.table
        repeated.rows[2] = repeated.rows[1]
        #expect(reason { try roundTrip(repeated) } == "'/routing': row 2 repeats layer 0, ffn, mlm, target 0")
        // No rows, and an expert count no report could print: refused before anything is printed.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("empty.h5")
        try HDF5File.write(to: url) { (f: HDF5File) throws(StorageError) in
            try f.createGroup(p)
            try f.setAttribute("routing", .string("token"), at: p)
            try f.setAttribute("experts", .int(1_000_000_000), at: p)
            for name in ["layer", "segment", "tokens"] { try f.write([Int](), shape: [0], to: "\(p)/\(name)") }
            try f.write([Double](), shape: [0, 1_000_000_000], to: "\(p)/weight_share")
            try f.write([Double](), shape: [0], to: "\(p)/mean_entropy")
        }
        let file = try HDF5File.open(url)
        defer { file.discard() }
        #expect(
            reason { try RoutingTable.read(from: file, tasks: Self.tasks) }
                == "'/routing/layer': no rows (a probe writes no table rather than an empty one)")
    }
}
