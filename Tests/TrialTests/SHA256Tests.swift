import Foundation
import Testing
@testable import Trial

@Suite("SHA-256 (FIPS 180-4)")
struct SHA256Tests {
    @Test("standard test vectors")
    func vectors() {
        #expect(SHA256.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(of: [UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(of: [UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("chunking does not change the digest", arguments: [1, 3, 55, 56, 63, 64, 65, 1000])
    func chunked(chunk: Int) {
        let message = (0..<2_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var hasher = SHA256()
        var start = 0
        while start < message.count {
            hasher.update(message[start..<min(start + chunk, message.count)])
            start += chunk
        }
        #expect(SHA256.hexString(hasher.finalize()) == SHA256.hex(of: message))
    }

    @Test("a copy of a hasher goes on independently of the original")
    func copies() {
        var first = SHA256()
        first.update(Array("abc".utf8))
        var second = first
        second.update(Array("def".utf8))
        #expect(SHA256.hexString(first.finalize()) == SHA256.hex(of: Array("abc".utf8)))
        #expect(SHA256.hexString(second.finalize()) == SHA256.hex(of: Array("abcdef".utf8)))
        // finalize starts a new message.
        first.update(Array("abc".utf8))
        #expect(SHA256.hexString(first.finalize()) == SHA256.hex(of: Array("abc".utf8)))
    }

    @Test("a file is hashed in chunks to the same digest as its bytes; a missing file names itself")
    func file() throws {
        let folder = makeTemporaryFolder()
        defer { removeFolder(folder) }
        let bytes = (0..<(1 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let path = folder + "/big.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try SHA256.hex(ofFile: path) == SHA256.hex(of: bytes))
        #expect(throws: TrialError.io(path: folder + "/absent", reason: "no such file")) { try SHA256.hex(ofFile: folder + "/absent") }
    }
}
