/// Text from outside (a bundle's keys and values, file names, a server's message) made safe to
/// print: control characters are shown as `\u{…}`, so a file cannot move the cursor, recolour
/// or retitle the operator's terminal, or forge an output line (found from outside).
public enum TerminalText {
    /// A server's message of several lines (libpq indents its hints with a tab) as one line of
    /// words: an error is one line.
    public static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\t" || $0 == " " || $0 == "\r" }).joined(separator: " ")
    }

    /// A name as one word of a command to copy into a shell: quoted when it holds anything but
    /// letters, digits, `_`, `.` and `-` (found from outside: `run 'datajoin track Mixed Tbl'`
    /// tracked a table `Mixed`).
    public static func argument(_ name: String) -> String {
        let plain =
            !name.isEmpty
            && name.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || "_.-".unicodeScalars.contains($0)
            }
        if plain { return name }
        return "\""
            + safe(name).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "$", with: "\\$").replacingOccurrences(of: "`", with: "\\`") + "\""
    }

    /// What a terminal would act on: C0 and C1 controls, DEL, bidi embeddings and isolates.
    static func actedOn(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7F...0x9F).contains(u.value) || (0x202A...0x202E).contains(u.value)
            || (0x2066...0x2069).contains(u.value)
    }

    public static func safe(_ text: String, keepNewlines: Bool = false) -> String {
        func isControl(_ u: Unicode.Scalar) -> Bool {
            if keepNewlines && (u == "\n" || u == "\t") { return false }
            return actedOn(u)
        }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if isControl(u) { out += "\\u{" + String(u.value, radix: 16) + "}" } else { out.unicodeScalars.append(u) }
        }
        return out
    }
}

extension StringProtocol {
    /// A value shown in a message, at most about `limit` characters: a longer one keeps its
    /// start and its end around "…", so a cut value is never shown as another one (found from
    /// outside: 1e-40 was shown as forty characters of zeros). Never walks a large value whole.
    func clipped(_ limit: Int) -> String {
        guard let end = index(startIndex, offsetBy: limit, limitedBy: endIndex), end != endIndex else {
            return String(self)
        }
        let head = limit / 2, tail = limit - head - 1
        return String(prefix(head)) + "…" + String(suffix(tail))
    }
}
