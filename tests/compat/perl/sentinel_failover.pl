# Perl Redis.pm (Debian libredis-perl) with sentinels, through a leader kill.
# Usage: sentinel_failover.pl <service> host:port [host:port ...]
# Prints "ready <master>", waits for a line on stdin (the test kills the
# leader meanwhile), writes until a write succeeds, prints
# "ok <old master> -> <new master> <value read back>".
use strict;
use warnings;
use Redis;
use Time::HiRes qw(time sleep);

$| = 1;
my ($service, @sentinels) = @ARGV;
my $r = Redis->new(sentinels => \@sentinels, service => $service,
                   reconnect => 20, every => 100_000, read_timeout => 10,
                   cnx_timeout => 1);
$r->set('pl:session', 'before');
die "read back failed\n" unless $r->get('pl:session') eq 'before';
my $before = $r->{server};
print "ready $before\n";
<STDIN>;

my $deadline = time + 20;
my $err;
while (time < $deadline) {
    eval { $r->set('pl:session', 'after'); 1 } and do { undef $err; last };
    $err = $@;
    sleep 0.1;
}
die "no write succeeded after the leader was killed: $err" if $err;
print "ok $before -> $r->{server} ", $r->get('pl:session'), "\n";
