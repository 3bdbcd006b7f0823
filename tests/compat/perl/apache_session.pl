#!/usr/bin/perl
# One request of a Perl application (Request Tracker's way) whose sessions
# are kept by Apache::Session::Browseable::Redis (Debian
# libapache-session-browseable-perl, over Redis::Fast or Redis.pm).
# Apache::Session has no expiry and no id regeneration of its own:
# regenerate copies the data to a new session and deletes the old one, as
# an application does.
#
# Usage: HATCHECK_ADDR=host:port perl apache_session.pl ACTION [ID]
use strict;
use warnings;
use Apache::Session::Browseable::Redis;
use JSON::PP;

my ($action, $id) = @ARGV;
my %args = (server => $ENV{HATCHECK_ADDR});
$args{password} = $ENV{HATCHECK_PASSWORD} if length($ENV{HATCHECK_PASSWORD} // '');

sub open_session {
    my ($sid) = @_;
    my %s;
    my $ok = eval { tie %s, 'Apache::Session::Browseable::Redis', $sid, \%args; 1 };
    return $ok ? \%s : undef;
}

if ($action eq 'create') {
    my $s = open_session(undef) or die "create: $@";
    $s->{n} = 0;
    $s->{user} = 'alice';
    print $s->{_session_id}, "\n";
    untie %$s;
} elsif ($action eq 'read') {
    my $s = open_session($id);
    if (!$s) { print "[]\n"; exit 0 }
    my %data = map { $_ => $s->{$_} } grep { $_ ne '_session_id' } keys %$s;
    print JSON::PP->new->canonical->encode(\%data), "\n";
    untie %$s;
} elsif ($action eq 'incr') {
    my $s = open_session($id) or die "incr: $@";
    my $n = $s->{n};
    select(undef, undef, undef, 0.03);
    $s->{n} = $n + 1;
    untie %$s;
} elsif ($action eq 'regenerate') {
    my $old = open_session($id) or die "regenerate: $@";
    my $new = open_session(undef) or die "regenerate: $@";
    $new->{$_} = $old->{$_} for grep { $_ ne '_session_id' } keys %$old;
    print $new->{_session_id}, "\n";
    untie %$new;
    tied(%$old)->delete;
} elsif ($action eq 'destroy') {
    my $s = open_session($id) or die "destroy: $@";
    tied(%$s)->delete;
} else {
    die "unknown action $action\n";
}
