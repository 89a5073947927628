import Foundation

/// What one load of a bundle into ds_change_inbox has counted so far.
struct InboxLoadCounts {
    /// Changes read from the file (progress is told every 2,000).
    var read: Int64 = 0
    /// Changes offered to the inbox: not this node's own, not below a high-water mark.
    var offered: Int64 = 0
    /// Rows the inbox took; an offered change already there (through another bundle) is not one.
    var loaded: Int64 = 0
    var skipped: Int64 = 0
    /// (origin, epoch) of the changes offered, snapshots' aside: their holdings advance.
    var touched = Set<[String]>()
}
