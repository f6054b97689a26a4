import CBLAS
public func _blasProbe() -> Float { var a: [Float] = [1, 2]; return cblas_sdot(2, &a, 1, &a, 1) }
