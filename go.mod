module github.com/dynamo-go/dynamo

go 1.26
