import Foundation

/// A lock held until `release()` (or until the process ends).
public protocol HeldLock: AnyObject {
    func release()
}
