import ArgumentParser

@main
struct Nimetrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nimetrics",
        abstract: "DTI and resting-state fMRI metrics for the visits of a clinical trial."
    )
}
