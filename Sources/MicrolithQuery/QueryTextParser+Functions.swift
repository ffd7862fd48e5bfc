/// `select(...)`, `sort(...)` and `limit(...)`.
extension QueryTextParser {
    static let functionNames: Set<String> = ["select", "sort", "limit"]
    static let selectNameEnd: Set<Character> = [",", "{", "}", "(", ")", "&", "|", "[", "]", "=", "!", "."]
    static let sortNameEnd: Set<Character> = [",", "{", "}", "(", ")", "&", "|", "[", "]", "=", "!"]
    static let limitNumberEnd: Set<Character> = [",", "(", ")", "&", "|", "[", "]", "=", "!"]
    /// The deepest `rel{...}` nesting accepted in `select(...)`.
    static let maximumSelectDepth = 32

    /// Parses a function call whose name starts at `nameStart`; the current character is its `(`.
    mutating func parseFunction(nameStart: Int) throws(QuerySyntaxError) {
        let name = String(text[nameStart..<index])
        guard !name.isEmpty else { throw error(index, "expected a function name before '('") }
        guard Self.functionNames.contains(name) else {
            throw error(nameStart, "unknown function '\(name)'; expected select, sort or limit")
        }
        guard depth == 0 else { throw error(nameStart, "\(name)(...) is not allowed inside a group ('[ ]' or '( )')") }
        guard topLevelOrOffset == nil else {
            throw error(nameStart, "functions cannot be combined with a top-level '|'; group the alternatives in '[ ]'")
        }
        guard functionOffsets[name] == nil else { throw error(nameStart, "\(name)(...) appears more than once") }
        functionOffsets[name] = nameStart
        let open = index
        index += 1
        switch name {
        case "select": query.select = try parseSelectList(open: open, close: ")", level: 1)
        case "sort": query.sort = try parseSortKeys(open: open)
        default: query.limit = try parseLimit(open: open)
        }
    }

    func unclosed(_ open: Int) -> QuerySyntaxError {
        error(open, "'\(text[open])' is never closed")
    }

    /// Parses `a,b,rel{x,y{z}}` up to and including `close`.
    mutating func parseSelectList(open: Int, close: Character, level: Int) throws(QuerySyntaxError) -> [SelectItem] {
        guard level <= Self.maximumSelectDepth else { throw error(open, "select(...) is nested too deeply") }
        var items: [SelectItem] = []
        var names: Set<String> = []
        while true {
            let start = index
            while let c = current, !Self.selectNameEnd.contains(c) { index += 1 }
            guard let c = current else { throw unclosed(open) }
            if c == "." {
                throw error(index, "select(...) takes attribute names; write rel{attr} to select attributes of a related record")
            }
            guard index > start else {
                if items.isEmpty && c == close { throw error(index, "empty attribute list") }
                throw error(index, "expected an attribute name")
            }
            let name = try percentDecode(from: start, to: index)
            guard names.insert(name).inserted else { throw error(start, "'\(name)' is selected twice") }
            var children: [SelectItem]?
            if c == "{" {
                let childOpen = index
                index += 1
                children = try parseSelectList(open: childOpen, close: "}", level: level + 1)
            }
            items.append(SelectItem(name: name, children: children))
            guard let next = current else { throw unclosed(open) }
            if next == "," {
                index += 1
            } else if next == close {
                index += 1
                return items
            } else {
                throw error(index, "expected ',' or '\(close)' but found '\(next)'")
            }
        }
    }

    /// Parses `+a,-b,c.d)`.
    mutating func parseSortKeys(open: Int) throws(QuerySyntaxError) -> [SortKey] {
        var keys: [SortKey] = []
        while true {
            var descending = false
            if current == "+" {
                index += 1
            } else if current == "-" {
                descending = true
                index += 1
            }
            let pathStart = index
            while let c = current, !Self.sortNameEnd.contains(c) { index += 1 }
            guard let c = current else { throw unclosed(open) }
            guard index > pathStart else {
                if keys.isEmpty && c == ")" && pathStart == open + 1 { throw error(index, "sort() needs at least one attribute") }
                throw error(index, "expected an attribute name")
            }
            keys.append(SortKey(path: try parsePath(from: pathStart, to: index), descending: descending))
            if c == "," {
                index += 1
            } else if c == ")" {
                index += 1
                return keys
            } else {
                throw error(index, "expected ',' or ')' but found '\(c)'")
            }
        }
    }

    /// Parses `n)` or `start,end)`.
    mutating func parseLimit(open: Int) throws(QuerySyntaxError) -> Limit {
        var numbers: [(value: Int, offset: Int)] = []
        while true {
            let start = index
            while let c = current, !Self.limitNumberEnd.contains(c) { index += 1 }
            guard let c = current else { throw unclosed(open) }
            let raw = String(text[start..<index])
            guard !raw.isEmpty else { throw error(start, "expected a number") }
            guard !raw.hasPrefix("-") else { throw error(start, "limit(...) numbers must not be negative") }
            guard raw.allSatisfy({ $0.asciiValue.map(NumberText.isDigit) ?? false }) else {
                throw error(start, "'\(raw)' is not a non-negative integer")
            }
            guard let value = Int(raw) else { throw error(start, "'\(raw)' is too large") }
            numbers.append((value, start))
            if c == "," {
                guard numbers.count < 2 else { throw error(index, "limit(...) takes one or two numbers") }
                index += 1
            } else if c == ")" {
                index += 1
                break
            } else {
                throw error(index, "expected ',' or ')' but found '\(c)'")
            }
        }
        if numbers.count == 1 { return Limit(start: 0, end: numbers[0].value) }
        guard numbers[1].value >= numbers[0].value else {
            throw error(numbers[1].offset, "limit end \(numbers[1].value) is before its start \(numbers[0].value)")
        }
        return Limit(start: numbers[0].value, end: numbers[1].value)
    }
}
