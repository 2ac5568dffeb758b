// The Phantoms module; see Package.swift for what it holds.
