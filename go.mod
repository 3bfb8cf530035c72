module github.com/wsgate/wsgate

go 1.26
