// The Trial module; see Package.swift for what it holds.
