// The NIfTI module; see Package.swift for what it holds.
