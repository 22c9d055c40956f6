package inventory

import "math"

var posInf = math.Inf(1)
