import Foundation
import Testing

/// The deployment files in Ops/deploy/ (Kubernetes manifests, systemd unit, alert rules,
/// dashboard) validated offline by Ops/deploy/check: schemas from the pinned
/// kubernetes-validate package, `systemd-analyze verify`, and cross-checks against
/// Config/ember.yaml. Metric names are checked against a running worker in
/// EmberWorkerTests.
@Suite("Deployment files")
struct DeploymentFilesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("Ops/deploy/check passes: manifests, systemd unit, alerts and dashboard")
    func check() throws {
        let (status, output) = try runProgram(Self.repository.appendingPathComponent("Ops/deploy/check"), in: Self.repository)
        #expect(status == 0, "\(output)")
        #expect(output.contains("deployment files OK"), "\(output)")
    }
}
