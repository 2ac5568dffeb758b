// The Parcellation module; see Package.swift for what it holds.
