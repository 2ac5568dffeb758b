// The Pipelines module; see Package.swift for what it holds.
