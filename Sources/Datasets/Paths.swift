import Foundation

/// `directory/name`, as every reader names the files it opens (and its errors).
func joinPath(_ directory: String, _ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
