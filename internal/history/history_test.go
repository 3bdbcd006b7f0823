package history

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds a completed operation for the checker.
func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func check(ops ...porcupine.Operation) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, ops, 10*time.Second)
}

func TestModel(t *testing.T) {
	set := func(v string) Input { return Input{Kind: Set, Key: "k", Value: v} }
	get := Input{Kind: Get, Key: "k"}
	never := int64(1<<63 - 1)
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read your write", []porcupine.Operation{
			op(0, 0, 1, set("a"), Output{}), op(1, 2, 3, get, Output{Exists: true, Value: "a"})}, porcupine.Ok},
		{"stale read", []porcupine.Operation{
			op(0, 0, 1, set("a"), Output{}), op(0, 2, 3, set("b"), Output{}),
			op(1, 4, 5, get, Output{Exists: true, Value: "a"})}, porcupine.Illegal},
		{"unknown write may have applied", []porcupine.Operation{
			op(0, 0, never, set("a"), Output{Unknown: true}), op(1, 2, 3, get, Output{Exists: true, Value: "a"})}, porcupine.Ok},
		{"unknown write may not have applied", []porcupine.Operation{
			op(0, 0, never, set("a"), Output{Unknown: true}), op(1, 2, 3, get, Output{})}, porcupine.Ok},
		{"setnx on an existing key changes nothing", []porcupine.Operation{
			op(0, 0, 1, set("a"), Output{}),
			op(0, 2, 3, Input{Kind: SetNX, Key: "k", Value: "b"}, Output{Exists: false}),
			op(1, 4, 5, get, Output{Exists: true, Value: "b"})}, porcupine.Illegal},
		{"del then expire", []porcupine.Operation{
			op(0, 0, 1, set("a"), Output{}),
			op(0, 2, 3, Input{Kind: Del, Key: "k"}, Output{Exists: true}),
			op(0, 4, 5, Input{Kind: Expire, Key: "k"}, Output{Exists: true})}, porcupine.Illegal},
		{"keys are independent", []porcupine.Operation{
			op(0, 0, 1, set("a"), Output{}), op(1, 2, 3, Input{Kind: Get, Key: "other"}, Output{})}, porcupine.Ok},
	}
	for _, c := range cases {
		if got := check(c.ops...); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
