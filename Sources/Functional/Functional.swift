// The Functional module; see Package.swift for what it holds.
