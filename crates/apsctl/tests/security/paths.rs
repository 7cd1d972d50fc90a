//! Links the tenant swaps in where apsctl walks: above its document root (A2), into another
//! tenant's site (A3), and in the folders of its instance while they are removed (A6).
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use crate::world::{Package, World, as_tenant_ok, finish, show, spawn_python_as, tree, victim};

fn plain_package(world: &World) -> String {
    world.package(&Package {
        name: "plain",
        language: "sh",
        configure: "exit 0\n",
        sqlite: false,
    })
}

/// A2: tenant a swaps `domains/a.example` (its own folder, above the registered document root
/// `domains/a.example/public_html`) for a link to tenant b's `domains/b.example`. A removal and
/// an install on site a then refuse, naming the link, and leave b's files as they were. (Before
/// the document root was opened without links, the removal deleted b's instance.)
#[test]
fn issue_7_a2_a_link_swapped_in_above_the_docroot_is_not_followed() {
    let world = World::new(2);
    let (a, b) = (world.tenant("a"), world.tenant("b"));
    let a_docroot = world.site(&a, "a");
    let b_docroot = world.site(&b, "b");
    let reference = plain_package(&world);
    let one = world.install(&reference, "a", "app");
    let two = world.install(&reference, "b", "app");
    let theirs = b_docroot.parent().unwrap().to_path_buf();
    let before = tree(&theirs);
    let domains = a_docroot.parent().unwrap().parent().unwrap();
    let link = domains.join("a.example");
    as_tenant_ok(
        &a,
        &format!(
            "cd '{}' && mv a.example a.old && ln -s '{}' a.example",
            show(domains),
            show(&theirs)
        ),
    );

    let run = world.apsctl(&["remove", &one, "--files", "all"]);
    run.refused().names(&[&show(&link)]);
    assert!(run.stderr.contains("symbolic link"), "{run}");
    assert_eq!(
        tree(&theirs),
        before,
        "b's files were touched by the removal"
    );
    let run = world.apsctl(&["install", &reference, "--site", "a", "--path", "other"]);
    run.refused().names(&[&show(&link)]);
    assert!(run.stderr.contains("symbolic link"), "{run}");
    assert_eq!(
        tree(&theirs),
        before,
        "b's files were touched by the install"
    );
    assert_eq!(world.instances(), [one.clone(), two]);

    // With the folder back, the removal goes through, still without touching b's files.
    as_tenant_ok(
        &a,
        &format!(
            "cd '{}' && rm a.example && mv a.old a.example",
            show(domains)
        ),
    );
    world.apsctl(&["remove", &one, "--files", "all"]).ok();
    assert!(!a_docroot.join("app").exists());
    assert_eq!(tree(&theirs), before);
}

/// A3: tenant a points links in its own site at tenant b's instance, at an empty folder of b's
/// and at b's document root, and asks for installs there; then it swaps its own instance's root
/// for a link to b's instance and has it removed. Nothing of b's is created, claimed (made
/// root's and 0700), chmodded or emptied, and b's instance stays whole. (`site add`'s refusals
/// of overlapping sites are in `tests/sites`.)
#[test]
fn issue_7_a3_a_tenant_cannot_place_or_remove_its_instance_in_another_tenants() {
    let world = World::new(3);
    let (a, b) = (world.tenant("a"), world.tenant("b"));
    let a_docroot = world.site(&a, "a");
    let b_docroot = world.site(&b, "b");
    let reference = plain_package(&world);
    let theirs = world.install(&reference, "b", "app");
    as_tenant_ok(&b, &format!("mkdir '{}'", show(&b_docroot.join("empty"))));
    let mine = world.install(&reference, "a", "mine");
    let before = tree(&b_docroot);
    as_tenant_ok(
        &a,
        &format!(
            "cd '{}' && ln -s '{}' into-b && ln -s '{}' claim && ln -s '{}' site-b",
            show(&a_docroot),
            show(&b_docroot.join("app")),
            show(&b_docroot.join("empty")),
            show(&b_docroot)
        ),
    );

    for path in ["into-b", "into-b/sub", "claim", "site-b/new"] {
        let first = path.split('/').next().unwrap();
        world
            .apsctl(&["install", &reference, "--site", "a", "--path", path])
            .refused()
            .names(&[&show(&a_docroot.join(first))]);
        assert_eq!(
            tree(&b_docroot),
            before,
            "install at `{path}` touched b's site"
        );
    }
    assert_eq!(world.instances(), [theirs.clone(), mine.clone()]);

    // a's own instance root becomes a link to b's instance: the removal takes the root for
    // gone and leaves the link (the tenant's) alone, and with it b's instance.
    as_tenant_ok(
        &a,
        &format!(
            "cd '{}' && mv mine mine.real && ln -s '{}' mine",
            show(&a_docroot),
            show(&b_docroot.join("app"))
        ),
    );
    world.apsctl(&["remove", &mine, "--files", "all"]).ok();
    assert_eq!(tree(&b_docroot), before, "the removal touched b's instance");
    assert!(
        fs_err::symlink_metadata(a_docroot.join("mine"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // b's instance is whole: recorded, and removed by its own removal.
    assert!(world.instances().contains(&theirs));
    world.apsctl(&["remove", &theirs, "--files", "all"]).ok();
    assert!(!b_docroot.join("app").exists());
    assert!(b_docroot.join("empty").is_dir());
}

/// The configuration script of A6: during `configure remove` (running as the tenant) it swaps
/// a folder for a link to a victim and plants links, in its instance root, its private `tmp/`
/// and its SQLite database folder.
fn planting_configure(site: &Path, tmp: &Path, db: &Path) -> String {
    format!(
        r#"swap() {{
  mkdir -p "$1/swapped" && echo mine > "$1/swapped/file" &&
  mv "$1/swapped" "$1/swapped.real" && ln -s "$2" "$1/swapped" &&
  ln -s "$2" "$1/link" && ln -s "$2/precious.txt" "$1/file-link"
}}
case "$1" in
remove)
  swap "$WEB___DIR" '{}' && swap "$(pwd)/../tmp" '{}' && swap "$(dirname "$DB_main_NAME")" '{}' || exit 1
  ;;
esac
exit 0
"#,
        show(site),
        show(tmp),
        show(db)
    )
}

/// The tenant's racer: in each folder given, a real folder `race` (with a file) and a link
/// `race.swap` to the victim trade places (`renameat2(RENAME_EXCHANGE)`) as fast as it can, until
/// the stop file exists or the folders are gone. Prints `ready`, then the number of swaps.
const RACER: &str = r"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
stop, victim, places = sys.argv[1], sys.argv[2], sys.argv[3:]
for p in places:
    os.mkdir(os.path.join(p, 'race'))
    open(os.path.join(p, 'race', 'file'), 'w').write('mine')
    os.symlink(victim, os.path.join(p, 'race.swap'))
print('ready', flush=True)
swaps, live = 0, list(places)
while live and not os.path.exists(stop):
    for p in list(live):
        a, b = os.path.join(p, 'race').encode(), os.path.join(p, 'race.swap').encode()
        if libc.renameat2(-100, a, -100, b, 2) == 0:
            swaps += 1
        else:
            live.remove(p)
print(swaps, flush=True)
";

/// A6: the tenant swaps folders for links to root's folders inside its instance root, its
/// private `tmp/` and its SQLite database folder — once from `configure remove`, and all along
/// from a process racing the removal. Root's folders keep their owners, modes and content.
#[test]
fn issue_7_a6_links_swapped_in_during_a_removal_are_not_followed() {
    let world = World::new(6);
    let a = world.tenant("a");
    world.site(&a, "s");
    world.sqlite_server();
    let victims: Vec<PathBuf> = ["victim-site", "victim-tmp", "victim-db", "victim-race"]
        .iter()
        .map(|name| victim(&world.dir, name))
        .collect();
    let before: Vec<_> = victims.iter().map(|v| tree(v)).collect();
    let configure = planting_configure(&victims[0], &victims[1], &victims[2]);
    let reference = world.package(&Package {
        name: "planter",
        language: "sh",
        configure: &configure,
        sqlite: true,
    });
    let ids = [
        world.install(&reference, "s", "one"),
        world.install(&reference, "s", "two"),
    ];
    let mut places = Vec::new();
    for id in &ids {
        let show = world.show(id);
        let db = PathBuf::from(show["databases"][0]["name"].as_str().unwrap());
        places.push(PathBuf::from(show["root"].as_str().unwrap()));
        places.push(world.private(id).join("tmp"));
        places.push(db.parent().unwrap().to_path_buf());
    }
    let stop = world.dir.join("stop-racing");
    let mut args = vec![show(&stop), show(&victims[3])];
    args.extend(places.iter().map(|p| show(p)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut racer = spawn_python_as(&a, RACER, &args);
    let mut first = String::new();
    std::io::BufReader::new(racer.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "ready", "the racer did not start");

    let choices = ["app", "all"];
    let racing: Vec<_> = ids
        .iter()
        .zip(choices)
        .map(|(id, files)| world.apsctl(&["remove", id, "--files", files]))
        .collect();
    fs_err::write(&stop, "").unwrap();
    let swaps: u64 = finish(racer).trim().parse().unwrap_or(0);
    for (victim, before) in victims.iter().zip(&before) {
        assert_eq!(
            &tree(victim),
            before,
            "`{}` was touched while removals ran:\n{}",
            show(victim),
            racing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(swaps > 0, "the racer never swapped");

    // A removal the racer made fail is finished by running it again; a private folder the
    // racer kept from going (reported as left over) is swept by `recover`.
    for (id, files) in ids.iter().zip(choices) {
        if world.instances().contains(id) {
            world.apsctl(&["remove", id, "--files", files]).ok();
        }
    }
    world.apsctl(&["recover"]).ok();
    for id in &ids {
        assert!(
            !world.private(id).exists(),
            "the private folder of {id} is left"
        );
    }
    assert!(world.instances().is_empty());
    for place in places.iter().skip(2).step_by(3) {
        assert!(
            !place.exists(),
            "the database folder `{}` is left",
            show(place)
        );
    }
    for (victim, before) in victims.iter().zip(&before) {
        assert_eq!(&tree(victim), before, "`{}` was touched", show(victim));
    }
}
