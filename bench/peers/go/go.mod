module spindle.bench/peers

go 1.19
