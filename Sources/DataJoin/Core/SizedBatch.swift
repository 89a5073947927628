/// Rows gathered for a second thread or a flush, full at `maxCount` of them or once they hold
/// `maxBytes` bytes of values or more: counted in rows alone, 256 rows of 1 MiB values were held
/// at once (found from outside: an export's memory grew with its bundle to 643 MiB).
struct SizedBatch<Element> {
    let maxCount: Int
    let maxBytes: Int
    private(set) var items: [Element] = []
    private var bytes = 0

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    /// Adds `item` of `size` bytes; true when the batch is full with it (take it then).
    mutating func add(_ item: Element, size: Int) -> Bool {
        items.append(item)
        bytes += size
        return items.count >= maxCount || bytes >= maxBytes
    }

    /// The items gathered, the batch left empty.
    mutating func take() -> [Element] {
        defer {
            items = []
            bytes = 0
        }
        return items
    }
}
