/// Converts UTF-8 byte offsets in a schema text (what the GraphQL parser reports) into 1-based
/// lines and columns. Columns count Unicode scalars, so a non-ASCII character is one column.
struct SourceLines {
    let file: String
    private let bytes: [UInt8]
    /// The byte offset at which each line starts; line 1 starts at 0.
    private let lineStarts: [Int]

    init(text: String, file: String) {
        self.file = file
        bytes = Array(text.utf8)
        var starts = [0]
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\r") {
                if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\n") { i += 1 }
                starts.append(i + 1)
            } else if byte == UInt8(ascii: "\n") {
                starts.append(i + 1)
            }
            i += 1
        }
        lineStarts = starts
    }

    /// The location of the byte at `offset` (clamped to the text).
    func location(ofOffset offset: Int) -> SourceLocation {
        let offset = min(max(offset, 0), bytes.count)
        // The last line start that is <= offset.
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        let start = lineStarts[low]
        // Count scalars: every byte that is not a UTF-8 continuation byte starts one.
        var column = 1
        for byte in bytes[start..<offset] where byte & 0xC0 != 0x80 { column += 1 }
        return SourceLocation(file: file, line: low + 1, column: column)
    }

    /// `true` when the text holds nothing but whitespace, commas, a byte order mark and comments,
    /// which GraphQL does not accept as a document but which is an empty schema.
    var isBlank: Bool {
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ","):
                i += 1
            case UInt8(ascii: "#"):
                while i < bytes.count, bytes[i] != UInt8(ascii: "\n"), bytes[i] != UInt8(ascii: "\r") { i += 1 }
            case 0xEF where i + 2 < bytes.count && bytes[i + 1] == 0xBB && bytes[i + 2] == 0xBF:
                i += 3
            default:
                return false
            }
        }
        return true
    }
}
