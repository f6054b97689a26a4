import Foundation
import Testing

/// Compares `text` with `Snapshots/<name>` beside this file (argument-parser's snapshot practice).
///
/// With `RECORD_SNAPSHOTS=1` in the environment the snapshot is (re)written and the check passes;
/// otherwise a missing snapshot fails, and a different one fails naming the first differing line.
func expectSnapshot(
    _ text: String, named name: String, filePath: String = #filePath,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let url = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        .appendingPathComponent("Snapshots").appendingPathComponent(name)
    if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1" {
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            Issue.record(
                Comment(rawValue: "could not record snapshot \(url.path): \(error)"),
                sourceLocation: sourceLocation)
        }
        return
    }
    guard let data = FileManager.default.contents(atPath: url.path),
        let expected = String(data: data, encoding: .utf8)
    else {
        let message =
            "missing snapshot \(url.path); record it with RECORD_SNAPSHOTS=1 swift test --filter ReporterTests"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
        return
    }
    guard text != expected else { return }
    let a = text.components(separatedBy: "\n")
    let e = expected.components(separatedBy: "\n")
    let line =
        zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(a.count, e.count)
    let got = line < a.count ? a[line] : "<end>"
    let want = line < e.count ? e[line] : "<end>"
    let message =
        "snapshot \(name) differs at line \(line + 1):\n  got:      \(got)\n  expected: \(want)\n"
        + "(re-record with RECORD_SNAPSHOTS=1 if the change is intended)"
    Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
}
