import Foundation
import UIKit

/// Where a cached image came from.
enum ImageSource: String {
    case memory
    case disk
    case network
}

/// Anything that can load image data for a URL.
protocol ImageLoader {
    func load(_ url: URL) async throws -> Data
}

/// A two-level (memory, disk) image cache.
final class ImageCache {
    static let shared = ImageCache()

    private let memory = NSCache<NSURL, UIImage>()
    private let directory: URL

    init(directory: URL = FileManager.default.temporaryDirectory) {
        self.directory = directory
    }

    convenience init(name: String) {
        self.init(directory: URL(fileURLWithPath: name))
    }

    /// The cached image, looking in memory first.
    func image(for url: URL) -> (UIImage, ImageSource)? {
        if let hit = memory.object(forKey: url as NSURL) {
            return (hit, .memory)
        }
        guard let data = try? Data(contentsOf: path(for: url)),
              let image = UIImage(data: data) else {
            return nil
        }
        memory.setObject(image, forKey: url as NSURL)
        return (image, .disk)
    }

    func image(for url: URL, loader: ImageLoader) async throws -> UIImage {
        if let (cached, _) = image(for: url) {
            return cached
        }
        let data = try await loader.load(url)
        try data.write(to: path(for: url))
        return UIImage(data: data) ?? UIImage()
    }

    private func path(for url: URL) -> URL {
        directory.appendingPathComponent(String(url.absoluteString.hashValue))
    }

    deinit {
        memory.removeAllObjects()
    }
}

struct CacheKey: Hashable {
    let url: URL
    let scale: Double

    /// A key for the main screen's scale.
    static func main(_ url: URL) -> CacheKey {
        CacheKey(url: url, scale: 2.0)
    }
}

extension ImageCache {
    /// Drops every entry from memory.
    func purge() {
        memory.removeAllObjects()
    }
}

@MainActor
func prefetch(_ urls: [URL], into cache: ImageCache) {
    for url in urls {
        _ = cache.image(for: url)
    }
}
