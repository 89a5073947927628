import DataJoin
import Foundation

/// SIGINT and SIGTERM end a command with one line on stderr (they ended it silently before;
/// found from outside), and then by the signal itself, so a shell sees 130 or 143 and a script's
/// loop stops as it would for any program killed so. What was committed stays; the open
/// transaction is rolled back by the database. `watch` replaces these handlers with its own
/// (it stops between cycles, exit 0). A signal ignored when the command started (a background
/// job of a non-interactive shell, `trap '' INT`) stays ignored.
enum Interrupt {
    /// Built before a handler can run: a handler may only call async-signal-safe functions. On
    /// a terminal it starts a line of its own (a progress line may be drawn there).
    private static let line = Array(
        ((isatty(2) == 1 ? "\n" : "")
            + "datajoin: interrupted: what was committed stays, the open transaction is rolled back; "
            + "run the command again to go on (docs/cli.md, exit status 130 and 143)\n").utf8)

    static func install() {
        _ = line.count
        InterruptCleanup.prepare()
        for sig in [SIGINT, SIGTERM] {
            let previous = signal(sig) { sig in
                InterruptCleanup.removeFiles()
                Interrupt.line.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count) }
                // Ended by the signal, as a program without a handler is.
                signal(sig, SIG_DFL)
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, sig)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                raise(sig)
                _exit(128 + sig)
            }
            if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
                signal(sig, SIG_IGN)
            }
        }
    }
}
