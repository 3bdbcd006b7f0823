package command

// Pub/sub: PUBLISH goes through the log so that every node delivers the
// message to its own subscribers (keyspace.Events). The reply counts this
// node's receivers.
var pubsubOps = []opRow{
	{op: OpPublish, name: "publish", flags: opWrite | opItem, args: argShape{2, 2}, exec: execPublish},
}

func execPublish(v env, c *Cmd) Result { return resInt(v.ks.Publish(c.Args[0], c.Args[1])) }
