use static_call_indirect as ind;
use static_call_inline_patch as ip;
use static_call_trampoline as tr;

extern "C" fn f_a(x: u64) -> u64 {
    x + 1
}
extern "C" fn f_b(x: u64) -> u64 {
    x + 2
}
extern "C" fn hook(_x: u32) {
    println!("hook")
}

ip::define_static_call!(
    static K_IP: extern "C" fn(u64) -> u64 = f_a;
);
tr::define_static_call!(
    static K_TR: extern "C" fn(u64) -> u64 = f_a;
);
ind::define_static_call!(
    static K_IND: extern "C" fn(u64) -> u64 = f_a;
);
ip::define_static_call!(
    static C_IP: extern "C" fn(u32) = None;
);

fn main() {
    println!(
        "{} {} {}",
        ip::static_call!(K_IP(2)),
        ip::static_call!(K_TR(2)),
        ip::static_call!(K_IND(2))
    );
    K_IP.update(f_b).unwrap();
    K_TR.update(f_b).unwrap();
    K_IND.update(f_b).unwrap();
    println!(
        "pre-init {} {} {}",
        ip::static_call!(K_IP(2)),
        ip::static_call!(K_TR(2)),
        ip::static_call!(K_IND(2))
    );
    ip::init().unwrap();
    tr::init().unwrap();
    ind::init().unwrap();
    println!(
        "post-init {} {} {}",
        ip::static_call!(K_IP(2)),
        ip::static_call!(K_TR(2)),
        ip::static_call!(K_IND(2))
    );
    K_IP.update(f_a).unwrap();
    K_TR.update(f_a).unwrap();
    K_IND.update(f_a).unwrap();
    println!(
        "back {} {} {}",
        ip::static_call!(K_IP(2)),
        ip::static_call!(K_TR(2)),
        ip::static_call!(K_IND(2))
    );
    ip::static_call_cond!(C_IP(1));
    C_IP.update_cond(Some(hook)).unwrap();
    ip::static_call_cond!(C_IP(1));
    C_IP.update_cond(None).unwrap();
    ip::static_call_cond!(C_IP(1));
    println!("{:?}\n{:?}\n{:?}", ip::stats(), tr::stats(), ind::stats());
    println!("{:?}", static_call_core::text::engine_info());
}
