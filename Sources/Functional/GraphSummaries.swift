// Summaries of a correlation matrix: mean connectivity, within/between-network means,
// node strength and weighted global efficiency (Rubinov & Sporns 2010, NeuroImage
// 52:1059-1069). All sums run in a fixed (row-major) order.

import SlabParallel

/// Mean of the finite upper-triangle entries (i < j) of a connectivity matrix.
///
/// `mean = (1 / |E|) sum_{i<j, r_ij finite} r_ij`; NaN edges (missing regions) are excluded.
/// Returns NaN when no edge is finite.
public func meanConnectivity(_ r: SquareMatrix) -> Double {
    var sum = 0.0
    var count = 0
    for i in 0..<r.size {
        for j in (i + 1)..<max(r.size, i + 1) where r[i, j].isFinite {
            sum += r[i, j]
            count += 1
        }
    }
    return count > 0 ? sum / Double(count) : .nan
}

/// Within- and between-network mean connectivity of one network.
public struct NetworkConnectivity: Sendable, Equatable {
    /// Network name.
    public var network: String
    /// Mean r over edges with both ends in the network (NaN when none).
    public var within: Double
    /// Mean r over edges with exactly one end in the network (NaN when none).
    public var between: Double
    /// Number of finite within-network edges averaged.
    public var withinEdges: Int
    /// Number of finite between-network edges averaged.
    public var betweenEdges: Int
}

/// Network-level summary of a connectivity matrix.
public struct NetworkConnectivitySummary: Sendable, Equatable {
    /// One entry per network, sorted by name.
    public var networks: [NetworkConnectivity]
    /// Mean r over all edges whose two ends share a network.
    public var within: Double
    /// Mean r over all edges whose ends lie in different networks.
    public var between: Double
}

/// Mean within-network and between-network connectivity.
///
/// Over the finite upper-triangle edges (i < j) whose regions both have a network name:
/// an edge is *within* network k when both ends belong to k and *between* for k when
/// exactly one end does. The overall means average all within edges and all between edges.
/// Regions whose name is nil are left out.
///
/// - Parameters:
///   - r: R x R connectivity matrix (Pearson r, typically).
///   - networks: the network name of each region (nil for none), R entries.
/// - Throws: `FunctionalError.shapeMismatch` when `networks.count != r.size`.
public func networkConnectivity(_ r: SquareMatrix, networks: [String?]) throws(FunctionalError) -> NetworkConnectivitySummary {
    guard networks.count == r.size else {
        throw .shapeMismatch("\(networks.count) network labels for \(r.size) regions")
    }
    let names = Array(Set(networks.compactMap { $0 })).sorted()
    var index: [String: Int] = [:]
    for (k, name) in names.enumerated() { index[name] = k }
    let label = networks.map { $0.flatMap { index[$0] } }
    var withinSum = [Double](repeating: 0, count: names.count), withinCount = [Int](repeating: 0, count: names.count)
    var betweenSum = withinSum, betweenCount = withinCount
    var allWithin = 0.0, allWithinCount = 0, allBetween = 0.0, allBetweenCount = 0
    for i in 0..<r.size {
        guard let a = label[i] else { continue }
        for j in (i + 1)..<max(r.size, i + 1) {
            guard let b = label[j], r[i, j].isFinite else { continue }
            let v = r[i, j]
            if a == b {
                withinSum[a] += v; withinCount[a] += 1
                allWithin += v; allWithinCount += 1
            } else {
                betweenSum[a] += v; betweenCount[a] += 1
                betweenSum[b] += v; betweenCount[b] += 1
                allBetween += v; allBetweenCount += 1
            }
        }
    }
    func mean(_ s: Double, _ c: Int) -> Double { c > 0 ? s / Double(c) : .nan }
    let perNetwork = names.indices.map { k in
        NetworkConnectivity(network: names[k], within: mean(withinSum[k], withinCount[k]),
                            between: mean(betweenSum[k], betweenCount[k]),
                            withinEdges: withinCount[k], betweenEdges: betweenCount[k])
    }
    return NetworkConnectivitySummary(networks: perNetwork, within: mean(allWithin, allWithinCount),
                                      between: mean(allBetween, allBetweenCount))
}

/// Node strength: `s_i = sum_{j != i} w_ij` over the finite entries (signed weights), the
/// weighted degree of Rubinov & Sporns 2010. A region whose row has no finite off-diagonal
/// entry (a missing region) gets NaN.
public func nodeStrength(_ r: SquareMatrix) -> [Double] {
    (0..<r.size).map { i in
        var sum = 0.0
        var any = false
        for j in 0..<r.size where j != i && r[i, j].isFinite {
            sum += r[i, j]
            any = true
        }
        return any ? sum : .nan
    }
}

/// Weighted global efficiency on the positive edges (Latora & Marchiori 2001, Phys Rev Lett
/// 87:198701; weighted form of Rubinov & Sporns 2010).
///
/// Nodes are the regions with at least one finite off-diagonal entry (n of them). Edges
/// are the finite entries `w_ij > 0`, of length `1 / w_ij`; `d_ij` is the shortest path
/// length (Floyd-Warshall, rows split across threads); unreachable pairs have
/// `1 / d_ij = 0`. `E = (1 / (n (n - 1))) sum_{i != j} 1 / d_ij`. NaN when n < 2.
///
/// - Parameters:
///   - r: R x R symmetric connectivity matrix.
///   - threads: number of threads (>= 1); results do not depend on it.
/// - Throws: `FunctionalError.invalidParameter` for a bad thread count.
public func globalEfficiency(_ r: SquareMatrix, threads: Int = 1) throws(FunctionalError) -> Double {
    let threads = try validatedThreads(threads)
    let nodes = (0..<r.size).filter { i in (0..<r.size).contains { j in j != i && r[i, j].isFinite } }
    let n = nodes.count
    guard n >= 2 else { return .nan }
    var d = [Double](repeating: .infinity, count: n * n)
    for a in 0..<n {
        for b in 0..<n {
            if a == b { d[a * n + b] = 0; continue }
            let w = r[nodes[a], nodes[b]]
            if w.isFinite, w > 0 { d[a * n + b] = 1 / w }
        }
    }
    for k in 0..<n {
        let rowK = Array(d[(k * n)..<((k + 1) * n)])  // row k does not change in step k
        withSharedBuffer(&d) { out in
            forEachSlab(count: n, threads: threads) { rows in
                for i in rows {
                    let dik = out[i * n + k]
                    guard dik.isFinite else { continue }
                    for j in 0..<n {
                        let via = dik + rowK[j]
                        if via < out[i * n + j] { out[i * n + j] = via }
                    }
                }
            }
        }
    }
    var sum = 0.0
    for a in 0..<n { for b in 0..<n where a != b { sum += 1 / d[a * n + b] } }
    return sum / Double(n * (n - 1))
}
