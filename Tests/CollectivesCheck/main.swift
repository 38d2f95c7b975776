import Collectives
import Foundation

// Each rank exercises every collective with inputs that depend on its rank and prints one JSON
// line of what came back; the test checks the values against sums it computes itself.
let comm = try MPICommunicator()
let count = 100_003  // not a round size
var floats = [Float](repeating: 0, count: count)
for i in 0..<count { floats[i] = Float(comm.rank + 1) * Float(i % 7) }
try floats.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }

// The int32 sum (exact fixed-point gradients), near the top of the range to catch narrowing.
var ints = [Int32](repeating: 0, count: count)
for i in 0..<count { ints[i] = Int32(comm.rank + 1) * Int32(i % 7) * 100_000_000 / 7 }
try ints.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
let hosts = try comm.hostNames()

var sums = [Double(comm.rank), 1.5], maxes = [Double(comm.rank), -Double(comm.rank)], mins = maxes
try comm.allreduce(&sums, .sum)
try comm.allreduce(&maxes, .max)
try comm.allreduce(&mins, .min)

let root = comm.size - 1  // not rank 0, so a broadcast that ignored the root would show
var broadcast = [Float](repeating: Float(comm.rank), count: 5)
try comm.broadcast(&broadcast, root: root)
let text = try comm.broadcast(bytes: comm.rank == root ? Array("from rank \(root)".utf8) : [], root: root)
let failing = try comm.firstFailingRank(localFailure: comm.rank == root)

let report: [String: Any] = [
    "rank": comm.rank, "size": comm.size, "local_size": comm.localSize,
    "float_sum_total": floats.reduce(0.0) { $0 + Double($1) }, "float_sample": floats[0..<8].map(Double.init),
    "int_sample": ints[0..<8].map(Int.init), "hosts": hosts.count, "library": MPICommunicator.libraryVersion,
    "sums": sums, "maxes": maxes, "mins": mins,
    "broadcast": broadcast.map(Double.init), "broadcast_text": String(decoding: text, as: UTF8.self),
    "first_failing_rank": failing ?? -1,
]
let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
// One write per line: Hydra's mpiexec forwards each write as it comes, so a line written in two
// pieces (print's text, then its newline) can be cut by another rank's.
FileHandle.standardOutput.write(json + Data("\n".utf8))
comm.finalize()
