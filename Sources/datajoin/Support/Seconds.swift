import ArgumentParser
import Foundation

/// A number of seconds as the user wrote it: messages echo their text (found from outside:
/// `--every 0.0000001` was refused as "not 1e-07", and `--every 0x10` ran every 16 s).
struct Seconds: ExpressibleByArgument, CustomStringConvertible {
    let value: Double
    let description: String

    init?(argument: String) {
        // Plain decimals only: Double also reads hex floats, exponents and "nan".
        guard argument.range(of: #"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)$"#, options: .regularExpression) != nil,
            let value = Double(argument)
        else { return nil }
        self.value = value
        self.description = argument
    }
}
