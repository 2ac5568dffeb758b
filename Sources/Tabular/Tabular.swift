// The Tabular module; see Package.swift for what it holds.
