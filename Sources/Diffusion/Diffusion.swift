// The Diffusion module; see Package.swift for what it holds.
